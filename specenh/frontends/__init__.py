"""Every enhancer and baseline behind one interface (:class:`FrontEnd`) and a name registry."""
from specenh.frontends.base import REGISTRY, FrontEnd, build, load, mask_padding, register, resolve

__all__ = ["FrontEnd", "REGISTRY", "register", "build", "load", "resolve", "mask_padding"]
