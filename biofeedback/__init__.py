"""biofeedback: heart-rate biofeedback for paced, consent-driven exposure therapy.

Not a medical device. See README.md.
"""

from __future__ import annotations

__version__ = "0.1.0"
