{#
    True when a string of digits passes the Luhn check, i.e. could be a card number (PAN). Engine-specific:
    DuckDB and Spark spell list lambdas differently.
#}
{% macro is_luhn_valid(digits) -%}
    {{ return(adapter.dispatch('is_luhn_valid', 'tally')(digits)) }}
{%- endmacro %}

{% macro default__is_luhn_valid(digits) -%}
    (list_sum(list_transform(range(1, length({{ digits }}) + 1), lambda i: (
        case
            when i % 2 = 0 and cast(substring(reverse({{ digits }}), i, 1) as integer) * 2 > 9
                then cast(substring(reverse({{ digits }}), i, 1) as integer) * 2 - 9
            when i % 2 = 0 then cast(substring(reverse({{ digits }}), i, 1) as integer) * 2
            else cast(substring(reverse({{ digits }}), i, 1) as integer)
        end
    ))) % 10 = 0)
{%- endmacro %}

{% macro spark__is_luhn_valid(digits) -%}
    (aggregate(sequence(1, length({{ digits }})), 0, (acc, i) -> acc + (
        case
            when i % 2 = 0 and cast(substring(reverse({{ digits }}), i, 1) as int) * 2 > 9
                then cast(substring(reverse({{ digits }}), i, 1) as int) * 2 - 9
            when i % 2 = 0 then cast(substring(reverse({{ digits }}), i, 1) as int) * 2
            else cast(substring(reverse({{ digits }}), i, 1) as int)
        end
    )) % 10 = 0)
{%- endmacro %}
