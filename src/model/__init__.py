"""The network, its record, loss, checkpoints, export and the CMU Caffe import."""
