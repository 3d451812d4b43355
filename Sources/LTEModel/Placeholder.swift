// The model layer: LLaMA blocks, forward and backward per layer (DESIGN.md §2).
