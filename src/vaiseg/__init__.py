"""vaiseg: a reproduction of Kampffmeyer, Salberg & Jenssen, "Semantic Segmentation of
Small Objects and Modeling of Uncertainty in Urban Remote Sensing Images Using Deep
CNNs" (CVPR Workshops 2016) on ISPRS Vaihingen.

Modules are named after the paper's parts: ``data`` (§3), ``patches`` (§4.1-4.2),
``models`` (§4.1-4.2), ``training``, ``mc_dropout`` (§4.3), ``fusion`` (§4.4),
``metrics`` (§3, §5) and ``reporting`` (§5).
"""

__version__ = "0.1.0"
