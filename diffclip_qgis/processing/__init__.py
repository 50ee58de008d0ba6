"""The Processing provider "DiffCLIP" and its algorithms (one per module).

Nothing here imports torch or the compute core at module level: the algorithms import
them inside ``processAlgorithm``, so the plugin (and the Toolbox) load without torch.
"""
