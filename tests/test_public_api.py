"""The public names users import; changing them is a breaking change."""

import convolens
import convolens.metrics


def test_top_level_exports():
    assert sorted(convolens.__all__) == [
        "BusinessLinks", "Channel", "Conversation", "Participant", "Role", "SourceInfo",
        "Utterance", "Word", "__version__",
    ]  # fmt: skip


def test_metrics_exports():
    assert {"compute_metrics", "metrics_for_conversation", "METRICS_VERSION", "Segment"} <= set(
        convolens.metrics.__all__
    )


def test_sdk_exports():
    import convolens.client

    assert sorted(convolens.client.__all__) == [
        "ApiError", "AsyncClient", "Client", "JobFailed", "JobTimeout", "LiveStream",
        "StreamEvent",
    ]  # fmt: skip
