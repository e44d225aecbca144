"""Whatever a value under the deployment's keys holds (written by hand, by an older version, or by an
attacker before the store was locked down), the controller's tick goes on and says what it did."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hastack.store import keys
from tests.unit.test_controller_service import World

GARBAGE = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "{", "null", "[]", "1e999", '"x"', '{"heartbeat": "soon"}', '{"heartbeat": null}']),
    st.builds(lambda n: f'{{"heartbeat": {n}}}', st.floats(allow_nan=True, allow_infinity=True)),
)


def _keys_the_controller_reads(w: World) -> list[str]:
    kvs, _rev = w.store.get_prefix(keys.root("d"))
    fixed = [keys.policy_key("d"), keys.paused_key("d"), keys.failsafe_key("d")]
    return sorted({kv.key for kv in kvs} | set(fixed))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_tick_survives_any_value_under_the_deployments_keys(data: st.DataObject) -> None:
    w = World()
    ctl = w.controller("ctl1")
    ctl.tick()
    targets = _keys_the_controller_reads(w)
    chosen = data.draw(st.lists(st.sampled_from(targets), min_size=1, max_size=4, unique=True))
    for key in chosen:
        w.store.put(key, data.draw(GARBAGE))
    for _ in range(3):
        w.clock.now += 0.5
        said = ctl.tick()
        assert isinstance(said, str)
        assert said
