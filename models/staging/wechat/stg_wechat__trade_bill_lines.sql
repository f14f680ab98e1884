-- The current version of each bill (INV-06). The lines are typed once, in stg_wechat__trade_bill_line_versions,
-- which also keeps the versions a re-issued bill superseded.
select * from {{ ref('stg_wechat__trade_bill_line_versions') }}
where file_version_id in {{ current_file_versions('wechat_trade_bill') }}
