import ArgumentParser
import LTEData
import LTETraining

// The framework's enums as option values: ArgumentParser lists their cases in --help and in the
// error for a value that is not one of them.

/// `lte train --mode`: the full-rank baseline, LTE, and the baselines LTE is compared with.
extension TrainingMode: ExpressibleByArgument {}

/// `lte data prepare|synth --tokenizer`.
extension TokenizerKind: ExpressibleByArgument {}
