"""minirai: a small from-scratch NumPy/CuPy deep-learning engine for learning and for
research on Relaxed Activation Identity (RAI)."""
from . import backend
from .layers import Identity, LeakyReLU, Linear, ReLU, Sigmoid, Tanh, Layer
from .losses import BCE, MSE, BCEWithLogits, SoftmaxCrossEntropy, Loss
from .network import Sequential, mlp
from .optim import SGD, Adam, Rprop, Optimizer
from .gradcheck import gradcheck, check_gradients, GradcheckError
from .switches import reference, strict_ieee
from .checkpoint import load, save

__version__ = "0.1.0"
__all__ = ["backend", "Layer", "Linear", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "Identity",
           "Loss", "MSE", "BCE", "BCEWithLogits", "SoftmaxCrossEntropy", "Sequential", "mlp",
           "Optimizer", "SGD", "Adam", "Rprop", "gradcheck", "check_gradients", "GradcheckError",
           "reference", "strict_ieee", "save", "load"]
