import Foundation

/// Makes an empty index from a faiss-like spec string:
///
/// | spec | index |
/// |---|---|
/// | `Flat` | exact search (`FlatIndex`: BLAS GEMM over blocks + top-k) |
/// | `IVF1024,Flat` / `IVF1024,Flat,nprobe=16` | inverted file, 1024 k-means cells, 16 scanned per query (`IVFIndex`; default nprobe 8) |
/// | `HNSW32` / `HNSW32,efSearch=64,efConstruction=200` | hnswlib graph with M = 32 (`HNSWIndex`; defaults efSearch 64, efConstruction 200) |
///
/// Option names are case-insensitive; an unknown name or value is an error naming the spec.
public func makeIndex(spec: String, dimension: Int, metric: ANNMetric) throws -> any ANNIndex {
    guard dimension > 0 else { throw ServingError("index '\(spec)': the dimension must be positive, got \(dimension)") }
    let parts = spec.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
    guard let head = parts.first, !head.isEmpty else {
        throw ServingError("empty index spec: use Flat, IVF<lists>,Flat or HNSW<M>")
    }
    var rest = Array(parts.dropFirst())
    var options: [String: Int] = [:]
    func takeOptions(allowed: [String]) throws {
        for item in rest {
            let kv = item.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, let key = allowed.first(where: { $0.lowercased() == kv[0].lowercased() }) else {
                throw ServingError("index '\(spec)': unknown part '\(item)'; \(head) takes \(allowed.map { "\($0)=N" }.joined(separator: ", "))")
            }
            guard let v = Int(kv[1]), v > 0 else {
                throw ServingError("index '\(spec)': \(kv[0]) must be a positive integer, got '\(kv[1])'")
            }
            options[key] = v
        }
    }
    if head.lowercased() == "flat" {
        try takeOptions(allowed: [])
        return FlatIndex(dimension: dimension, metric: metric)
    }
    if head.uppercased().hasPrefix("IVF") {
        guard let nlist = Int(head.dropFirst(3)), nlist > 0 else {
            throw ServingError("index '\(spec)': '\(head)' needs a positive number of lists, as in IVF1024,Flat")
        }
        guard rest.first?.lowercased() == "flat" else {
            throw ServingError("index '\(spec)': only uncompressed lists are supported; write IVF\(nlist),Flat")
        }
        rest.removeFirst()
        try takeOptions(allowed: ["nprobe"])
        return try IVFIndex(dimension: dimension, metric: metric, nlist: nlist, nprobe: options["nprobe"] ?? 8)
    }
    if head.uppercased().hasPrefix("HNSW") {
        let mText = head.dropFirst(4)
        guard let m = mText.isEmpty ? 32 : Int(mText), m >= 2 else {
            throw ServingError("index '\(spec)': '\(head)' needs M ≥ 2, as in HNSW32")
        }
        try takeOptions(allowed: ["efSearch", "efConstruction"])
        return try HNSWIndex(dimension: dimension, metric: metric, m: m, efConstruction: options["efConstruction"] ?? 200,
                             efSearch: options["efSearch"] ?? 64)
    }
    throw ServingError("unknown index spec '\(spec)': use Flat, IVF<lists>,Flat[,nprobe=N] or HNSW<M>[,efSearch=N][,efConstruction=N]")
}

/// Loads an index written by `ANNIndex.save(to:)`, verifying its checksum and layout first; a
/// corrupt, truncated or tampered file is refused with a message naming the file.
public func loadIndex(from url: URL) throws -> any ANNIndex {
    let (header, payload) = try ANNIndexFile.read(url)
    let index: any ANNIndex
    switch header.kind {
    case "flat":
        index = try FlatIndex.load(header, payload)
    case "ivf":
        guard let nlist = Int(header.spec.split(separator: ",").first?.dropFirst(3) ?? "") else {
            throw ServingError("\(url.path): the IVF spec '\(header.spec)' in the header is malformed (corrupt file)")
        }
        index = try IVFIndex.load(header, nlist: nlist, payload)
    case "hnsw":
        index = try HNSWIndex.load(header, payload, url: url)
    default:
        throw ServingError("\(url.path): unknown index kind '\(header.kind)' (written by a newer Herd?)")
    }
    if header.kind != "hnsw", !payload.isAtEnd {
        throw ServingError("\(url.path): bytes left over after the \(header.kind) payload (corrupt file); rebuild it with `herd nearline`")
    }
    return index
}
