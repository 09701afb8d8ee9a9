/// The `k` largest keys seen so far with their ids: a sorted array, insertion only when a candidate
/// beats the current `k`-th (the common case for a scan is a single comparison).
///
/// NOTE: for the small `k` of retrieval (10–1000) a sorted insertion beats a heap: the threshold
/// check rejects almost every candidate after the first few hundred, and an insertion is a short
/// `memmove`.
struct TopK {
    let k: Int
    private(set) var keys: [Float]
    private(set) var ids: [Int64]
    private(set) var count = 0
    /// The key a candidate must exceed to enter (−∞ until `k` are held).
    private(set) var threshold = -Float.infinity

    init(k: Int) {
        self.k = k
        keys = [Float](repeating: -.infinity, count: max(k, 1))
        ids = [Int64](repeating: -1, count: max(k, 1))
    }

    mutating func reset() {
        count = 0
        threshold = -.infinity
    }

    @inline(__always)
    mutating func push(_ key: Float, _ id: Int64) {
        guard key > threshold || (count < k && !key.isNaN) else { return }
        insert(key, id)
    }

    private mutating func insert(_ key: Float, _ id: Int64) {
        var i = count < k ? count : k - 1
        if count < k { count += 1 }
        while i > 0 && keys[i - 1] < key {
            keys[i] = keys[i - 1]
            ids[i] = ids[i - 1]
            i -= 1
        }
        keys[i] = key
        ids[i] = id
        if count == k { threshold = keys[k - 1] }
    }
}
