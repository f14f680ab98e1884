{#
    True for a delivery a build as of `as_of` may read: a bill date up to as_of, delivered before the end of the
    next day (the morning run of D+1 reconciles bill date D). This makes a build a pure function of what had
    landed by then, so rebuilding a past as_of after later files (late, re-issued) landed reproduces it exactly.
    Without the `as_of` var everything landed is known.
#}
{% macro is_known_as_of(bill_date, delivered_at) -%}
    {%- if var('as_of', none) -%}
        ({{ bill_date }} <= {{ as_of_date() }}
        and {{ delivered_at }} < {{ dbt.dateadd('day', 2, as_of_date()) }})
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}
