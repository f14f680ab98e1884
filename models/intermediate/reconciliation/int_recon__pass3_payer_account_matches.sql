/*
    Pass 3: bank credits with no usable remark code (missing or mistyped) against recharge applications by payer
    account + amount inside the time window. Unique pairs match; equal candidates are refused as ambiguous.
    One row per matched pair or refused candidate pair (`is_ambiguous`).
*/
{{ fuzzy_match_pass(
    'payer_account_amount_window', 'c.payer_account', 'i.payer_account',
    ['int_recon__pass1_key_matches', 'int_recon__pass2_secondary_key_matches']
) }}
