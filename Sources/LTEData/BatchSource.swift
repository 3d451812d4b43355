/// Anything that fills a batch of (B·T) input ids and their next-token targets.
public protocol BatchSource {
    var batchSize: Int { get }
    var contextLength: Int { get }
    mutating func next(inputs: UnsafeMutablePointer<Int32>, targets: UnsafeMutablePointer<Int32>)
}
