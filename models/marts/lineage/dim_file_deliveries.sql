/*
    One row per delivered file: where it came from, its bytes' hash, its status (current, superseded by a re-issue,
    duplicate, rejected), its line counts and control totals. The marts name the file version of each line they
    come from (`*_file_version_id`); this is where a BI tool on the serving file follows that to the file itself.
    Every column of the landing ledger's staging model: the contract (_lineage__models.yml) pins their names and
    types, so a change upstream fails the build instead of changing what BI sees.
*/
select * from {{ ref('stg_lake__file_deliveries') }}
