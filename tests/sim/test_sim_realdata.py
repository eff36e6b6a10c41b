"""Paper exchange on real Binance candles (../shared/data; skipped when absent): gaps replay as gaps."""

from __future__ import annotations

import pandas as pd

from ethbtc.data.candles import load_candles
from tests.support.sim_fixtures import spot_client


def test_replay_of_real_15m_candles_keeps_historical_times_and_gaps(shared_data, sim_factory) -> None:
    candles = load_candles(shared_data / "ETHBTC_15m_2020-02_2020-10.freqtrade.json", "15m")
    df = candles.df
    gap_end = df.index.get_loc(pd.Timestamp("2020-06-28 05:30", tz="UTC"))  # first bar after a 14-bar outage
    sim = sim_factory(candles, start=gap_end - 2, balances={"BTC": "1"})
    client = spot_client(sim)
    sim.advance(2)
    rows = client.klines("ETHBTC", "15m", limit=3)
    times = [pd.Timestamp(r[0], unit="ms", tz="UTC") for r in rows]
    assert times[-1] == pd.Timestamp("2020-06-28 05:30", tz="UTC")
    assert times[-1] - times[-2] == pd.Timedelta(minutes=15 * 15)  # the outage is not invented away
    # replayed prices lie on today's tickSize grid (filters.md PRICE_FILTER; 2020 quoted a finer tick)
    assert rows[-1][1] == f"{round(df.iloc[gap_end]['open'] / 0.00001) * 0.00001:.8f}"
    fill = client.new_order("ETHBTC", "BUY", "MARKET", quantity="1")["fills"][0]
    assert abs(float(fill["price"]) - df.iloc[gap_end]["open"]) <= 0.00001 + 1e-12
    assert len(client.klines("ETHBTC", "15m", limit=1000)) == 1000
