"""A second market generator for ``arbx bench glitches``, written apart from the detector.

The simulator (``domain/simulator``) and the glitch detector grew up together; a detector
that only ever meets its sibling's markets can pass by learning its habits. This generator
is written from what Chilean department stores do, not from the detector's rules: nothing
here imports the detector or its thresholds, and its numbers are its own.

**What the stores do.** Falabella, Ripley and Paris carry overlapping catalogues; each
product has a price that depends on the store (a few percent apart, one store sometimes
structurally cheaper). Prices are steps ending in 990. Over the months:

* *permanent level shifts* — a listing's price, or a product's price at every store (a
  supplier's new price list, followed with a lag of days), moves for good: mostly cuts of
  5-35 %, sometimes raises;
* *promotions* — 10-50 % off the current price for a day to two weeks, the crossed-out list
  price unchanged, often (in some scenarios: usually) a few weeks after a permanent cut;
* *event days* — CyberDay and CyberMonday (the organisers' dates) and one unannounced
  market-wide sale nobody's calendar knows; most products 15-50 % off at every store,
  some stores raising prices in the weeks before (the "fake discount"); and store-only
  category weeks (every TV at one store 15-40 % off for a few days);
* *card prices* — the store card's price a few percent under the offer when shown, and
  card-only dips 20-50 % under the offer for a few days while the offer stays put;
* *stock-outs* — spells of days; Paris hides the price meanwhile, the others keep it;
* *price matching* — some listings follow the cheapest competitor's price of the day
  before, down to 60 % of their own regular price (a pricing engine will not sell at a
  loss);
* *late listings* (appear mid-series) and *delistings*; one crawl a day per store in its
  own hours, sometimes a missed crawl, sometimes a second one later the same day.

**What goes wrong** (labelled ``is_glitch`` on every observation that shows it): a digit
dropped anywhere in the price (1.299.990 -> 129.990 or 299.990), two zeros lost, the price
typed in thousands or US dollars, 1 CLP (or 10, 100, 990 placeholders), 90 % off, a
discount typed ten times too deep (7 % -> 70 %), a pack priced at its unit's price, an
accessory's price on a big-ticket product, and a whole price block (list, offer, card)
losing a digit. On the offer, sometimes on the card price only; for hours, a day, or two
or three days (the same or a different wrong value each day); on any day of a listing's
life, including its first, event days, promotions and stock-outs.

Each observation also carries ``dynamics``, the ordinary things going on around it
(``promotion``, ``event``, ``store_sale``, ``card_dip``, ``matched``, ``inflated``,
``recent_shift``, ``out_of_stock``, ``new_listing``), so the bench can say which of them a
false alarm came from; and each glitch its ``mechanism``, ``glitch_day`` (1, 2, 3) and
whether it showed on the listing's first day.

Modules: ``config`` (the stores, categories and knobs), ``shelf`` (shelf prices, spells of
days), ``catalogue`` (products, listings and crawl times), ``book`` (every listing's prices
day by day), ``mistakes`` (the planted glitches), ``generator``
(:func:`~arbx_dagster.bench.retail_market.generator.generate_retail_market`: the labelled
series) and ``scenarios``. Nothing in this package imports from outside it.
"""
