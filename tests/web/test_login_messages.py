"""The sign-in page tells the truth about where the therapist secret can come from.

Issue 16: the page said "set in the config file" while the config file refused the secret. The
page names the config file exactly when the config loader takes `[web] therapist_secret`.
"""

from __future__ import annotations

import re

from biofeedback.config import ENV_THERAPIST_SECRET, parse_config
from biofeedback.errors import ConfigError
from tests.web.conftest import Dash


def config_file_takes_the_secret() -> bool:
    try:
        cfg = parse_config('[web]\ntherapist_secret = "a-secret-long-enough"\n', env={})
    except ConfigError:
        return False
    return cfg.web.therapist_secret == "a-secret-long-enough"


async def test_sign_in_page_names_only_real_sources_of_the_secret(dash: Dash) -> None:
    resp = await dash.client.get("/login")
    assert resp.status == 200
    text = re.sub(r"<[^>]+>|\s+", " ", await resp.text())
    assert ENV_THERAPIST_SECRET in text
    if config_file_takes_the_secret():
        assert "[web] therapist_secret" in text, text
    else:
        assert "config" not in text.lower(), text
