"""Backtest and calibration over the shipped close history (issue 9).

Options are priced by the method's model (smile + BSM for SPX legs, Black-76 on modelled VIX
futures), never by historical quotes: every report says so.
"""

MODEL_PRICING_NOTE = (
    "Options are priced by a model (smile-model BSM for SPX legs, Black-76 on modelled VIX "
    "futures), not by historical option quotes: real fills, skew and spreads differ."
)
