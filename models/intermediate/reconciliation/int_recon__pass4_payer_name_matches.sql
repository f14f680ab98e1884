/*
    Pass 4: what pass 3 could not place, by payer name + amount inside the time window. Names are compared without
    parenthesised notes such as （个人） or （个体）, which banks and users add inconsistently. Unique pairs match;
    equal candidates are refused as ambiguous. One row per matched pair or refused candidate pair.
*/
{{ fuzzy_match_pass(
    'payer_name_amount_window',
    regexp_replace_all('c.payer_name', '（[^）]*）|[(][^)]*[)]', ''),
    regexp_replace_all('i.payer_name', '（[^）]*）|[(][^)]*[)]', ''),
    ['int_recon__pass1_key_matches', 'int_recon__pass2_secondary_key_matches',
     'int_recon__pass3_payer_account_matches']
) }}
