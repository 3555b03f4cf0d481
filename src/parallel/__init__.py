"""Data-parallel runs: launcher detection, the CPU mpirun bridge, collectives."""
