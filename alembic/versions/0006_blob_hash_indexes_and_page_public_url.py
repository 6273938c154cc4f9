"""index the metadata and provenance hashes of files; the public URL a page was written under

A file request asks which project first brought a blob into the store, by
any of its three hashes; without these indexes that was a scan of every
pinned file (1.6 ms per request at 58,000 files, growing with the store).
A page's file links are absolute under [server] public_url when it is set;
the page remembers which, so a changed setting rebuilds it.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 14:20:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('public_url', sa.Text(), nullable=True))
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.create_index('ix_files_metadata_sha256', ['metadata_sha256'], unique=False)
        batch_op.create_index('ix_files_provenance_sha256', ['provenance_sha256'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('files', schema=None) as batch_op:
        batch_op.drop_index('ix_files_provenance_sha256')
        batch_op.drop_index('ix_files_metadata_sha256')
    with op.batch_alter_table('pages', schema=None) as batch_op:
        batch_op.drop_column('public_url')
