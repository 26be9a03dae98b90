"""Language helpers shared by every stage: pure functions over strings, no models, no index.

- ``sentences``: sentence spans (offsets into the text, so a quote can always be cut back out);
- ``dates``: parsing and checking the dates users type;
- ``encoding``: strings that are not text (lone surrogates), which every shell refuses;
- ``quotes``: who said what, from the text's own attributions ("…," said Mr X);
- ``words``: the word lists (stop words, question words, abbreviations) and the answerers'
  word normaliser.
"""
