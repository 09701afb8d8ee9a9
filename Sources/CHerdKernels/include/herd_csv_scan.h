#ifndef HERD_CSV_SCAN_H
#define HERD_CSV_SCAN_H
#include <stddef.h>
#include <stdint.h>

/// Finds the end of the line starting at `p` (its '\n', or `end`) and the separators before it,
/// scanning 64 bytes at a time (the CSV reader's field split: one pass over the line instead of
/// a `memchr` per field). Returns the line's length (offset of its '\n' from `p`, or `end - p`).
/// `*found` = separators in the line; the offsets from `p` of the first `max_seps` of them are
/// written to `seps`, in order. Reads nothing at or past `end`.
size_t herd_csv_split_line(const uint8_t *p, const uint8_t *end, uint8_t sep, uint32_t *seps, size_t max_seps, size_t *found);

#endif
