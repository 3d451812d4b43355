import LTENet
import LTETraining

/// What a closed round sends back (DESIGN.md §4, §8): the same round for every pusher, in as few
/// bytes as each can use.
extension ServerCore {
    /// The round's result tensors, for every pusher alike (lock held, before `open` is cleared).
    /// Workers with the float32 frozen weights get the merged heads' factors (the low-rank delta);
    /// workers that hold them quantized only cannot apply a delta, and get the requantized layers.
    /// The replicated mean goes as values (f32) or as its quantized change (`meanChange`).
    func resultTensors(heads: [Int], mean: [Float], meanChange: ReplicatedDelta?) -> [WireTensor] {
        var tensors: [WireTensor] = !descriptor.workersHoldFrozenMaster ? [] :
            heads.compactMap { h in open[h]!.factors.map { WireTensor(name: WireNames.factors(h), pushed: $0.quantized) } }
        tensors.append(meanChange.map { WireTensor(name: WireNames.replicatedMean, pushed: $0.quantized) }
                       ?? WireTensor(name: WireNames.replicatedMean, shape: [mean.count], values: mean))
        if !descriptor.workersHoldFrozenMaster {
            for e in main.quantizedFrozen?.entries ?? [] { tensors.append(WireTensor(name: WireNames.frozen(e.name), pushed: e.tensor)) }
        }
        return tensors
    }

    /// A round's result as one pusher is answered: without its own heads' factors where they are the
    /// very bytes it pushed (the MAC vouches they arrived as sent), so sending them back would only
    /// cost the link (a worker with 2 of 6 heads receives a third less). Where the round merged other
    /// bytes for its head — an earlier push of the same worker name and round, from a process that
    /// was killed and restarted, kept while this one was ignored as a repeat — they go back, and the
    /// worker merges those, as the server did.
    func answer(_ result: RoundResultMessage, to p: PushMessage) -> WireMessage {
        var result = result
        let own = Set(p.headIds.map(WireNames.factors))
        result.tensors.removeAll { own.contains($0.name) && p.tensors.contains($0) }
        return .roundResult(result)
    }
}
