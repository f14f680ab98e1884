/*
    Every pair the cascade made, one row per (channel line, our record), with the rule and pass that made it.
    Refused (ambiguous) candidate pairs of the fuzzy passes are not pairs and stay out.
    A view: the passes are tables already, and only fct_recon_results and this model's two tests read it, so a
    table would write every pair (10M at 10M trades) a second time.
*/
{{ config(materialized='view') }}
{%- set passes = [
    'int_recon__pass1_key_matches', 'int_recon__pass2_secondary_key_matches',
    'int_recon__pass3_payer_account_matches', 'int_recon__pass4_payer_name_matches',
    'int_recon__pass5_settlement_group_matches',
] %}
{%- for model in passes %}
    select
        recon_stream,
        channel_line_id,
        internal_record_id,
        match_rule,
        pass_no
    from {{ ref(model) }}
    {%- if 'payer' in model %}
        where not is_ambiguous
    {%- endif %}
    {%- if not loop.last %}
        union all
    {%- endif %}
{%- endfor %}
