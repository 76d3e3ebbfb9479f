"""The LiDAR-RGB segmentation network: 2D branch, 3D branches, LI-fusion, bottlenecks, losses."""
