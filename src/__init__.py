"""OpenPose (Cao et al., CVPR 2017) for MindSpore: library package."""
