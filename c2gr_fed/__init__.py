"""c2gr-fed: federated simulator for C2GR continual universal medical image segmentation."""

__version__ = "0.1.0"
