"""The result writer gives json.dumps(indent=2, allow_nan=True)'s text for whatever a result holds."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from streammetric._json import dumps_indented

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(values)
def test_the_text_is_json_dumps_indent_2(value):
    assert dumps_indented(value) == json.dumps(value, indent=2, allow_nan=True)


def test_numpy_scalars_are_written_as_the_standard_encoder_refuses_them():
    import numpy as np
    import pytest

    with pytest.raises(TypeError):
        json.dumps({"a": np.float32(1.5)}, indent=2)
    with pytest.raises(TypeError):
        dumps_indented({"a": np.float32(1.5)})
