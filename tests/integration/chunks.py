"""Chunks of one document with their embeddings, ready for a retrieval Upsert."""

from __future__ import annotations

from ragplane.v1 import embedding_pb2, embedding_pb2_grpc, retrieval_pb2


def embedded_chunks(
    embedding: embedding_pb2_grpc.EmbeddingServiceStub,
    document_id: str,
    texts: list[str],
    section: str = "manual",
) -> list[retrieval_pb2.ChunkWithVector]:
    vectors = embedding.Embed(embedding_pb2.EmbedRequest(texts=texts), timeout=60).embeddings
    return [
        retrieval_pb2.ChunkWithVector(
            chunk=retrieval_pb2.Chunk(
                chunk_id=f"{document_id}#{index}",
                document_id=document_id,
                chunk_index=index,
                text=text,
                title=document_id,
                metadata={"section": section},
            ),
            vector=list(vector.values),
        )
        for index, (text, vector) in enumerate(zip(texts, vectors, strict=True))
    ]
