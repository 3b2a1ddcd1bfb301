import pytest

from safurai_csharp.testing import make_tiny_model


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A 2-layer Qwen2 with random weights and a tokenizer trained in the test: mechanics, not quality."""
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "model")
