-- Twenty features.
insert into features (name, description)
select 'feature-' || lpad(n::text, 2, '0'), 'Demo feature ' || n
from generate_series(1, 20) as n
