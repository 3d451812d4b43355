// The store layer: safetensors codec and the git-backed history.
