"""imitari: learn behaviour from demonstrations (collect -> train -> evaluate -> report)."""

__version__ = "0.1.0"
