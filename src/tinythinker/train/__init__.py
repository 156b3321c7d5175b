"""Training: phase 1 (``sft``: the three-stage schedule) and its stage-data helpers (``data``)."""
