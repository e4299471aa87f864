"""Property: any sequence of valid edits leaves a scenario lint-clean."""

from __future__ import annotations

import shutil

import pytest
from conftest import ACRN_DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acrn_ivshmem.edit.regions import (
    RegionSpec, add_region, remove_region, set_region,
)
from acrn_ivshmem.io.xmlio import parse_bytes
from acrn_ivshmem.lint.engine import Linter
from acrn_ivshmem.model.loader import from_document

pytestmark = pytest.mark.skipif(not ACRN_DATA.is_dir(),
                                reason=f"{ACRN_DATA} is missing")

SIZES = [2 ** power for power in range(1, 10)]
# whl-ipc-i5 shared.xml (v3.3): a Service VM and six post-launched VMs;
# legacy v2.7 hybrid_rt.xml: pre-launched, Service and post VMs.
V3_POST = ["POST_STD_VM1", "POST_RT_VM1", "POST_STD_VM2", "POST_STD_VM3",
           "POST_STD_VM4", "POST_STD_VM5"]

operation = st.one_of(
    st.tuples(st.just("add"), st.sampled_from(SIZES),
              st.lists(st.sampled_from(V3_POST), min_size=2, max_size=4,
                       unique=True),
              st.sampled_from(["hv", "dm"])),
    st.tuples(st.just("set-size"), st.sampled_from(SIZES)),
    st.tuples(st.just("set-vms"),
              st.lists(st.sampled_from(V3_POST), min_size=2, max_size=3,
                       unique=True)),
    st.tuples(st.just("remove")),
)


def apply(data: bytes, op, index: int) -> bytes:
    """Apply one operation; edits of an absent region are skipped."""
    document = parse_bytes(data, "s.xml")
    names = [r.name.text for r in from_document(document).regions]
    kind = op[0]
    if kind == "add":
        _, size, vms, provider = op
        hv = sum(1 for r in from_document(document).regions
                 if r.land == "hv")
        if provider == "hv" and hv >= 8:
            provider = "dm"
        spec = RegionSpec(name=f"r{index}", size=size, vms=tuple(vms),
                          provider=provider)
        return add_region(document, spec).data
    if not names:
        return data
    target = names[index % len(names)]
    if kind == "set-size":
        return set_region(document, target, RegionSpec(size=op[1])).data
    if kind == "set-vms":
        return set_region(document, target,
                          RegionSpec(vms=tuple(op[1]))).data
    return remove_region(document, target).data


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operation, min_size=1, max_size=6))
def test_valid_edit_sequences_stay_lint_clean(ops, tmp_path_factory):
    folder = tmp_path_factory.mktemp("seq")
    source = ACRN_DATA / "v3.3" / "whl-ipc-i5"
    shutil.copy(source / "whl-ipc-i5.xml", folder)
    path = folder / "shared.xml"
    data = (source / "shared.xml").read_bytes()
    for index, op in enumerate(ops):
        data = apply(data, op, index)
        linter = Linter()
        linter.preload(parse_bytes(data, str(path)))
        result = linter.lint([str(path)], str(folder / "whl-ipc-i5.xml"))
        errors = [d for d in result.diagnostics if d.severity == "error"]
        assert not result.errors and not errors, (op, errors)
