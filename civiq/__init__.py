"""civiq: edge agents and gateway for the queue hardware of public-administration service centers.

The package is split in three parts that never import each other sideways:

* :mod:`civiq.contract` and the other top-level modules are shared by both sides (wire contract,
  clock, logging);
* :mod:`civiq.edge` is the Raspberry Pi agent;
* :mod:`civiq.gateway` is the province gateway.
"""

__version__ = "0.1.0"
