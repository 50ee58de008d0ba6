"""The numeric parameters' ranges, in Processing and on the command line alike (imports nothing: Processing
loads it without the core)."""
from typing import Dict, Optional, Tuple

#: (lowest, highest; None = open) per parameter name; decimal bounds make a decimal parameter, whole ones a whole.
RANGES: Dict[str, Tuple[Optional[float], Optional[float]]] = {
    "SEED": (0, None), "SMOOTHING": (0, 25), "PRETRAIN_EPOCHS": (-1, None), "EPOCHS": (-1, None),
    "SAMPLE_COUNT": (-1, None), "COUNT": (-1, None), "SAMPLE_SIZE": (1, None), "MIN_PER_CLASS": (1, None),
    "CLASS_PROPORTIONS": (0.0, 1.0), "MASK_RATIO": (0.05, 0.95)}
