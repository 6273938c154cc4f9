"""pages keep the upstream page as sent, with its type and base URL

The stored upstream copy was the mirror's own JSON rendering of the page;
rendering it cost as much as building the served page.  It is now kept as
upstream sent it, with the Content-Type and URL to parse it again by.  Rows
stored before keep NULL in both and are read as before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:20:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('upstream_type', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('upstream_base', sa.Text(), nullable=True))


def downgrade() -> None:
    # The older code reads every stored copy as its own JSON form: pages stored as sent are
    # dropped (a page is a cache of upstream; pins and decisions live elsewhere) and fetched again.
    op.execute("DELETE FROM pages WHERE upstream_type IS NOT NULL")
    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.drop_column('upstream_base')
        batch_op.drop_column('upstream_type')
