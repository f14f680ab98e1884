{#
    INV-27: no text column of the model holds a full card number: a 13-19 digit, Luhn-valid run of digits.
    Masked numbers (first 6, stars, last 4) pass. Fails with one row per offending value.
#}
{% test no_unmasked_pan(model) %}
    {%- set text_columns = [] -%}
    {%- for col in adapter.get_columns_in_relation(model) -%}
        {%- if col.is_string() -%}{%- do text_columns.append(col.name) -%}{%- endif -%}
    {%- endfor -%}
    {%- if text_columns | length == 0 %}
    select '' as token where 1 = 0
    {%- else %}
    with runs as (
        {%- for c in text_columns %}
        {{ tally.digit_tokens(model, adapter.quote(c)) }}
        {%- if not loop.last %} union all{% endif %}
        {%- endfor %}
    )
    select token from runs
    where length(token) between 13 and 19 and {{ tally.is_luhn_valid('token') }}
    {%- endif %}
{% endtest %}
