"""xray-qc's training host: the paper's recipe (ResNet-34 + FC 512/256/2, frozen backbone, flips),
leave-one-bundle-out evaluation, operating points from out-of-fold scores, export to a station
bundle. Reached through `xray-qc train|evaluate` or `python3 -m xray_qc_train`."""

__version__ = '0.1.0'
