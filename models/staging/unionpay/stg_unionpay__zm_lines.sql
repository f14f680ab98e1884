-- The current version of each bill (INV-06). The lines are typed once, in stg_unionpay__zm_line_versions,
-- which also keeps the versions a re-issued bill superseded.
select * from {{ ref('stg_unionpay__zm_line_versions') }}
where file_version_id in {{ current_file_versions('unionpay_zm') }}
