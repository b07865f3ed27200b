"""Signal-processing primitives shared by every layer (data, degrade, features, front-ends, vocoder).

Bottom of the import graph: nothing here imports another specenh package, and torch is imported
only inside the torch entry points, so numpy users (degradation workers, the CLI) never load it.
"""
