import Foundation

/// A fixed-size, 64-byte aligned, zero-initialised array of float32 that owns its memory.
///
/// Every tensor of the model (parameters, gradients, activations, optimizer moments) lives in one of
/// these, addressed by offset: hot loops take raw pointers and nothing is allocated after set-up.
/// Buffers of 1 MiB and more are mapped from the kernel, already zero: a page becomes resident only
/// when first written, so a part that is never used (a head's frozen weights, read elsewhere) costs
/// no memory. `lazily` maps a smaller one the same way, for scratch that may never be used.
public final class FloatBuffer: @unchecked Sendable {
    public let count: Int
    public let pointer: UnsafeMutablePointer<Float>
    private let mappedBytes: Int   // 0 when allocated from the heap

    public init(count: Int, lazily: Bool = false) {
        precondition(count >= 0, "FloatBuffer: negative size")
        self.count = count
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        if bytes >= 1 << 20 || lazily, let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED {
            mappedBytes = bytes
            pointer = p.bindMemory(to: Float.self, capacity: max(count, 1))
        } else {
            mappedBytes = 0
            let raw = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            pointer = raw.bindMemory(to: Float.self, capacity: max(count, 1))
            pointer.initialize(repeating: 0, count: max(count, 1))
        }
    }

    public convenience init(_ values: [Float]) {
        self.init(count: values.count)
        values.withUnsafeBufferPointer { pointer.update(from: $0.baseAddress!, count: values.count) }
    }

    deinit {
        if mappedBytes > 0 { munmap(pointer, mappedBytes) } else { pointer.deallocate() }
    }

    public subscript(index: Int) -> Float {
        get { pointer[index] }
        set { pointer[index] = newValue }
    }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: pointer, count: count) }
    public var array: [Float] { Array(buffer) }

    public func zero() { pointer.update(repeating: 0, count: count) }

    /// Gives the whole pages inside [offset, offset + n) back to the kernel: they read as zero and
    /// cost no memory until written again. For a part of a mapped buffer the process no longer reads
    /// (a worker's float32 frozen weights, once it holds them quantized); a heap buffer keeps its pages.
    public func release(offset: Int, count n: Int) {
        guard mappedBytes > 0, n > 0 else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let start = UInt(bitPattern: pointer + offset), end = UInt(bitPattern: pointer + offset + n)
        let first = (start + UInt(page) - 1) / UInt(page) * UInt(page), last = end / UInt(page) * UInt(page)
        guard last > first, let p = UnsafeMutableRawPointer(bitPattern: first) else { return }
        madvise(p, Int(last - first), MADV_DONTNEED)
    }

    public func copy(from other: FloatBuffer) {
        precondition(other.count == count, "FloatBuffer.copy: \(other.count) != \(count)")
        pointer.update(from: other.pointer, count: count)
    }

    public func clone() -> FloatBuffer {
        let c = FloatBuffer(count: count)
        c.copy(from: self)
        return c
    }

    /// The little-endian float32 bytes of `count` values from `offset` (the on-disk and on-wire form).
    public func bytes(offset: Int = 0, count n: Int? = nil) -> Data {
        let n = n ?? (count - offset)
        return Data(bytes: pointer + offset, count: n * MemoryLayout<Float>.stride)
    }
}
