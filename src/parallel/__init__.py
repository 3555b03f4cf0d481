"""Data-parallel runs: launcher detection (launch), the CPU mpirun bridge (mpirun_bridge),
joining the cluster (runtime), collectives and the sharding rule (sharding)."""
