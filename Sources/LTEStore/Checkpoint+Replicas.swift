import Foundation
import LTEBase
import LTENumerics
import LTETraining

/// The replicated modes' part of a checkpoint (`lte train --mode lte|lora|lora-merge|fedavg`):
///
///     replicas.safetensors   every tensor of a `ReplicaRunState` (flat, float32), its metadata as
///                            the file's metadata (mode, round, counters, a round in flight)
///
/// model.safetensors beside it holds the model the run produces, as in every checkpoint.
extension Checkpoint {
    public static let replicasFile = "replicas.safetensors"

    /// True when the checkpoint holds a replicated run's whole state.
    public var holdsReplicas: Bool { FileManager.default.fileExists(atPath: url.appendingPathComponent(Self.replicasFile).path) }

    public func replicaState() throws -> ReplicaRunState {
        let file = url.appendingPathComponent(Self.replicasFile)
        let saved = try SafeTensorsFile(contentsOf: file)
        let tensors = saved.names.map { name in (name: name, values: FloatBuffer(saved[name]!.values)) }
        return ReplicaRunState(tensors: tensors, metadata: saved.metadata)
    }

    static func writeReplicas(_ state: ReplicaRunState, into dir: URL) throws {
        let views = state.tensors.map {
            SafeTensorsFile.TensorView(name: $0.name, shape: [$0.values.count],
                                       data: UnsafeBufferPointer(start: $0.values.pointer, count: $0.values.count))
        }
        let data = try withExtendedLifetime(state) { try SafeTensorsFile.encode(views, metadata: state.metadata) }
        try DurableFile.write(data, to: dir.appendingPathComponent(replicasFile))
    }
}
