// The training layer: optimizer, schedules, tokenizers, data, the train loop.
