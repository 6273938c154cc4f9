"""refused clients: who asked for a blocked project

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:05:00.000000
"""

from alembic import op
import sqlalchemy as sa
import mirror.db.models


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('refused_clients',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('project', sa.String(length=255), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('count', sa.BigInteger(), nullable=False),
    sa.Column('first_seen', mirror.db.models.UTCDateTime(), nullable=False),
    sa.Column('last_seen', mirror.db.models.UTCDateTime(), nullable=False),
    sa.Column('version', sa.String(length=255), nullable=True),
    sa.Column('filename', sa.String(length=512), nullable=True),
    sa.Column('installer', sa.String(length=80), nullable=True),
    sa.Column('python', sa.String(length=80), nullable=True),
    sa.Column('system', sa.String(length=80), nullable=True),
    sa.Column('ci', sa.Boolean(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_refused_clients')),
    sa.UniqueConstraint('project', 'client', name=op.f('uq_refused_clients_project_client'))
    )
    with op.batch_alter_table('refused_clients', schema=None) as batch_op:
        batch_op.create_index('ix_refused_clients_last_seen', ['last_seen'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('refused_clients', schema=None) as batch_op:
        batch_op.drop_index('ix_refused_clients_last_seen')

    op.drop_table('refused_clients')
