{#
    A card number's shape (PAN): 13-19 digits under a card network's prefix that pass the Luhn check. The same rule as
    the landing's masking (tally.masking.could_be_pan and PAN_DIGITS): a UnionPay merchant code (898...) or an
    Alipay PID (2088...) is Luhn-valid one time in ten, and it is not a card.
#}

{#- the digits of a possible card number: a prefix 1, 3-6, 22-27, 81 or 82, then 13-19 digits in all -#}
{% macro pan_digits_pattern() -%}
    ([13-6][0-9]{12,18}|(2[2-7]|8[12])[0-9]{11,17})
{%- endmacro %}

{#- true when `digits`, a string of digits only, could be a card number -#}
{% macro could_be_pan(digits) -%}
    ({{ tally.regexp_found(digits, '^' ~ tally.pan_digits_pattern() ~ '$') }} and {{ tally.is_luhn_valid(digits) }})
{%- endmacro %}
