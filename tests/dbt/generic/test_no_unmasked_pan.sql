{#
    INV-27: no text column of the model holds a full card number: a 13-19 digit run of digits under a card network's
    prefix that passes the Luhn check (could_be_pan).
    Masked numbers (first 6, stars, last 4) pass. Fails with one row per offending value.
    `exclude_columns` names columns that hold identifiers a channel or bank chose and landing keeps as delivered: a
    file name, the merchant key read from it. A bank statement's file name carries the account number, and a
    personal-style account number (62...) can be card-shaped.
#}
{% test no_unmasked_pan(model, exclude_columns=[]) %}
    {%- set text_columns = [] -%}
    {%- for col in adapter.get_columns_in_relation(model) -%}
        {%- if col.is_string() and col.name not in exclude_columns -%}
            {%- do text_columns.append(col.name) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if text_columns | length == 0 %}
    select '' as token where 1 = 0
    {%- else %}
    {#- one scan of the model: every text column joined by a space (not a token character), so the tokens are the
        same as column by column; a scan per column ran out of memory on a 10M-row staging view -#}
    {%- set quoted = [] -%}
    {%- for c in text_columns -%}{%- do quoted.append(adapter.quote(c)) -%}{%- endfor %}
    with candidates as (
        {#- a cheap existence check first: only rows with a card-shaped digit run between non-token characters are
            split into tokens (a failed match consumes nothing, so the first such run is always found) -#}
        select concat_ws(' ', {{ quoted | join(', ') }}) as text_value from {{ model }}
        where {{ tally.regexp_found("concat_ws(' ', " ~ quoted | join(', ') ~ ")",
                                    '(^|[^0-9A-Za-z])' ~ tally.pan_digits_pattern() ~ '([^0-9A-Za-z]|$)') }}
    ),

    runs as (
        {{ tally.digit_tokens('candidates', 'text_value') }}
    )
    select token from runs
    where {{ tally.could_be_pan('token') }}
    {%- endif %}
{% endtest %}
