from src.runtime.context import check_mindspore_version, resolve_device_target


def test_slow_release_warning():
    assert "2.8.0" in check_mindspore_version("CPU", "2.9.0")
    assert check_mindspore_version("CPU", "2.10.1") is not None
    assert check_mindspore_version("GPU", "2.10.0") is None
    assert check_mindspore_version("CPU", "2.8.0") is None


def test_auto_device():
    assert resolve_device_target("auto") in ("GPU", "CPU")
    assert resolve_device_target("Ascend") == "Ascend"
